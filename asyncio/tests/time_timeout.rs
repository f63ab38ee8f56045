//! `timeout` / `timeout_at`: expiry, swallowing, nesting, outside cancels,
//! rescheduling and the handle's states.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::{
    checkpoint, create_task, current_task, get_running_loop, sleep, timeout, timeout_at,
    CancelledError, TimeoutError, TimeoutHandle,
};
use common::*;

type R<T> = Result<T, CancelledError>;

// test_timeouts: test_timeout_basic
#[asyncio::test(virtual_time)]
async fn timeout_fires() {
    let clock = Clock::start();
    let to = timeout(ms(10), sleep(secs(10)));
    let cm = to.handle();
    let r = to.await;
    assert!(matches!(r, Err(TimeoutError)));
    assert!(cm.expired());
    assert_eq!(clock.elapsed(), ms(10));
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// test_timeouts: test_timeout_at_basic
#[asyncio::test(virtual_time)]
async fn timeout_at_fires_at_its_deadline() {
    let clock = Clock::start();
    let deadline = now() + ms(10);
    let to = timeout_at(deadline, sleep(secs(10)));
    let cm = to.handle();
    assert!(to.await.is_err());
    assert!(cm.expired());
    assert_eq!(cm.when(), Some(deadline));
    assert_eq!(clock.elapsed(), ms(10));
}

// test_timeouts: test_waiter_cancelled
#[asyncio::test(virtual_time)]
async fn the_inner_await_sees_cancelled_error() {
    let log = log();
    let l = log.clone();
    let r = timeout(ms(10), async move {
        let r = sleep(secs(10)).await;
        push(&l, format!("inner cancelled={}", r.is_err()));
        r
    })
    .await;
    assert!(matches!(r, Err(TimeoutError)));
    assert_eq!(take(&log), ["inner cancelled=true"]);
}

// new (ASYNCIO-SEMANTICS §7): the inner code swallows the cancellation: Ok, yet expired()
#[asyncio::test(virtual_time)]
async fn inner_swallow_gives_ok_and_expired() {
    let clock = Clock::start();
    let to = timeout(secs(1), async {
        match sleep(secs(10)).await {
            Ok(()) => "slept",
            Err(_) => "swallowed",
        }
    });
    let cm = to.handle();
    assert_eq!(to.await, Ok("swallowed"));
    assert!(cm.expired());
    assert_eq!(clock.elapsed(), secs(1));
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// new (DESIGN §3): after a swallowed expiry, later awaits in the block run normally
#[asyncio::test(virtual_time)]
async fn after_a_swallowed_expiry_the_block_can_keep_awaiting() {
    let clock = Clock::start();
    let r = timeout(secs(1), async {
        let first = sleep(secs(10)).await.is_err();
        sleep(secs(1)).await?;
        Ok::<_, CancelledError>(first)
    })
    .await;
    assert!(r.unwrap().unwrap());
    assert_eq!(clock.elapsed(), secs(2));
}

// test_timeouts: test_timeout_not_called
#[asyncio::test(virtual_time)]
async fn timeout_not_reached() {
    let clock = Clock::start();
    let to = timeout(secs(10), sleep(ms(10)));
    let cm = to.handle();
    to.await.unwrap().unwrap();
    let t1 = now();
    assert!(!cm.expired());
    assert!(cm.when().unwrap() > t1);
    assert_eq!(cm.when(), Some(clock.at() + secs(10)));
    assert_eq!(clock.elapsed(), ms(10));
}

/// A `wait_for` resolves its deadline when first polled, on the loop's
/// clock: the handle has no deadline before, the exact one after, also
/// once the wait is over.
#[asyncio::test(virtual_time)]
async fn wait_for_resolves_its_deadline_when_polled() {
    let clock = Clock::start();
    sleep(ms(5)).await.unwrap();
    let to = asyncio::wait_for(sleep(ms(10)), secs(10));
    let cm = to.handle();
    assert_eq!(cm.when(), None);
    let polled_at = clock.at() + ms(5);
    to.await.unwrap().unwrap();
    assert_eq!(cm.when(), Some(polled_at + secs(10)));
    assert!(!cm.expired());
}

// test_timeouts: test_timeout_disabled
#[asyncio::test(virtual_time)]
async fn timeout_none_never_fires() {
    let clock = Clock::start();
    let to = timeout(None, sleep(secs(3600)));
    let cm = to.handle();
    to.await.unwrap().unwrap();
    assert!(!cm.expired());
    assert_eq!(cm.when(), None);
    assert_eq!(clock.elapsed(), secs(3600));
}

// test_timeouts: test_timeout_at_disabled
#[asyncio::test(virtual_time)]
async fn timeout_at_none_never_fires() {
    let to = timeout_at(None, sleep(ms(10)));
    let cm = to.handle();
    to.await.unwrap().unwrap();
    assert!(!cm.expired());
    assert_eq!(cm.when(), None);
}

// test_timeouts: test_timeout_zero
#[asyncio::test(virtual_time)]
async fn timeout_zero_around_a_sleep() {
    let clock = Clock::start();
    let to = timeout(secs(0), sleep(secs(10)));
    let cm = to.handle();
    assert!(matches!(to.await, Err(TimeoutError)));
    assert!(cm.expired());
    assert_eq!(cm.when(), Some(clock.at()));
    assert_eq!(clock.elapsed(), secs(0));
}

// test_timeouts: test_timeout_zero_sleep_zero
#[asyncio::test(virtual_time)]
async fn timeout_zero_around_a_bare_yield() {
    let to = timeout(secs(0), checkpoint());
    let cm = to.handle();
    assert!(matches!(to.await, Err(TimeoutError)));
    assert!(cm.expired());
}

// test_timeouts: test_timeout_in_the_past_sleep_zero
#[asyncio::test(virtual_time)]
async fn timeout_at_in_the_past_around_a_bare_yield() {
    let t0 = now();
    let past = t0
        .checked_sub(secs(11))
        .expect("clock far enough from its origin");
    let to = timeout_at(past, checkpoint());
    let cm = to.handle();
    assert!(matches!(to.await, Err(TimeoutError)));
    assert!(cm.expired());
    assert_eq!(cm.when(), Some(past));
    assert_eq!(now(), t0);
}

// new (ASYNCIO-SEMANTICS §7): timeout(0) expires on the next turn of the loop, not at once
#[asyncio::test(virtual_time)]
async fn timeout_zero_expires_on_the_next_turn() {
    let log = log();
    let l = log.clone();
    let _sib = create_task(async move {
        for i in 0..3 {
            push(&l, format!("sib{i}"));
            checkpoint().await.unwrap();
        }
    });
    checkpoint().await.unwrap();
    push(&log, "enter");
    let l = log.clone();
    let r = timeout(secs(0), async move {
        checkpoint().await?;
        push(&l, "not reached");
        Ok::<_, CancelledError>(())
    })
    .await;
    if r.is_err() {
        push(&log, "timeout");
    }
    checkpoint().await.unwrap();
    assert_eq!(take(&log), ["sib0", "enter", "sib1", "timeout", "sib2"]);
}

// new (ASYNCIO-SEMANTICS §7): a timeout with no await inside never fires, even timeout(0)
#[asyncio::test(virtual_time)]
async fn timeout_with_no_await_inside_never_fires() {
    let to = timeout(secs(0), async { 5 });
    let cm = to.handle();
    assert_eq!(to.await, Ok(5));
    assert!(!cm.expired());
    assert!(format!("{cm:?}").contains("[finished]"), "{cm:?}");
    // The armed expiry was withdrawn: the next awaits are not cancelled.
    checkpoint().await.unwrap();
    sleep(ms(1)).await.unwrap();
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// test_timeouts: test_foreign_exception_passed
#[asyncio::test(virtual_time)]
async fn a_foreign_error_passes_through() {
    let to = timeout(ms(10), async { Err::<(), _>("KeyError") });
    let cm = to.handle();
    assert_eq!(to.await, Ok(Err("KeyError")));
    assert!(!cm.expired());
}

// test_timeouts: test_foreign_exception_on_timeout
#[asyncio::test(virtual_time)]
async fn a_foreign_error_raised_while_cancelled_passes_through() {
    async fn crash() -> Result<(), String> {
        match sleep(secs(1)).await {
            Ok(()) => Ok(()),
            Err(_cancelled) => Err("ZeroDivisionError".to_string()),
        }
    }
    let to = timeout(ms(10), crash());
    let cm = to.handle();
    assert_eq!(to.await, Ok(Err("ZeroDivisionError".to_string())));
    assert!(cm.expired());
}

// test_timeouts: test_foreign_cancel_doesnt_timeout_if_not_expired
#[asyncio::test(virtual_time)]
async fn a_self_cancel_inside_an_unexpired_timeout_stays_cancelled_error() {
    let clock = Clock::start();
    let to = timeout(secs(10), async {
        current_task().unwrap().cancel();
        sleep(secs(10)).await
    });
    let cm = to.handle();
    let r = to.await;
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
    assert!(!cm.expired());
    assert_eq!(clock.elapsed(), secs(0));
    current_task().unwrap().uncancel();
}

// test_timeouts: test_outer_task_is_not_cancelled
#[asyncio::test(virtual_time)]
async fn the_task_around_an_expired_timeout_is_not_cancelled() {
    let mut t = create_task(async {
        let r = timeout(ms(1), sleep(secs(10))).await;
        assert!(matches!(r, Err(TimeoutError)));
        "handled"
    });
    assert_eq!((&mut t).await.unwrap(), "handled");
    assert!(t.done() && !t.cancelled());
    assert_eq!(t.cancelling(), 0);
}

// test_timeouts: test_nested_timeouts
#[asyncio::test(virtual_time)]
async fn nested_timeouts_with_the_same_deadline_only_the_outer_converts() {
    let log = log();
    let deadline = now() + ms(10);
    let inner_cm: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
    let (l, slot) = (log.clone(), inner_cm.clone());
    let outer = timeout_at(deadline, async move {
        let inner = timeout_at(deadline, sleep(secs(10)));
        *slot.borrow_mut() = Some(inner.handle());
        match inner.await {
            Err(TimeoutError) => {
                push(&l, "inner TimeoutError");
                Ok(())
            }
            Ok(Err(e)) => {
                push(&l, "inner CancelledError");
                Err(e)
            }
            Ok(Ok(())) => Ok(()),
        }
    });
    let cm1 = outer.handle();
    let r = outer.await;
    assert!(matches!(r, Err(TimeoutError)), "{r:?}");
    assert_eq!(take(&log), ["inner CancelledError"]);
    assert!(cm1.expired());
    assert!(inner_cm.borrow().as_ref().unwrap().expired());
}

// new (ASYNCIO-SEMANTICS §7): an inner, shorter timeout converts and the outer block continues
#[asyncio::test(virtual_time)]
async fn nested_inner_shorter_converts_outer_continues() {
    let clock = Clock::start();
    let outer = timeout(secs(10), async {
        let inner = timeout(secs(1), sleep(secs(5))).await;
        let inner_timed_out = matches!(inner, Err(TimeoutError));
        sleep(secs(2)).await?;
        Ok::<_, CancelledError>(inner_timed_out)
    });
    let cm = outer.handle();
    assert!(outer.await.unwrap().unwrap());
    assert!(!cm.expired());
    assert_eq!(clock.elapsed(), secs(3));
}

// new (ASYNCIO-SEMANTICS §7): an outer, shorter timeout: the inner one sees plain CancelledError
#[asyncio::test(virtual_time)]
async fn nested_outer_shorter_inner_sees_cancelled() {
    let log = log();
    let clock = Clock::start();
    let l = log.clone();
    let outer = timeout(secs(1), async move {
        let inner = timeout(secs(10), sleep(secs(5)));
        let icm = inner.handle();
        let r = inner.await;
        push(
            &l,
            format!(
                "inner: timeout={} cancelled={} expired={}",
                matches!(r, Err(TimeoutError)),
                matches!(r, Ok(Err(_))),
                icm.expired()
            ),
        );
        r.unwrap()
    });
    assert!(matches!(outer.await, Err(TimeoutError)));
    assert_eq!(
        take(&log),
        ["inner: timeout=false cancelled=true expired=false"]
    );
    assert_eq!(clock.elapsed(), secs(1));
}

// test_timeouts: test_nested_timeouts_loop_busy (in part: no busy loop, so
// the outer deadline has not passed yet when the inner one fires)
#[asyncio::test(virtual_time)]
async fn inner_times_out_then_outer_interrupts_the_next_sleep() {
    let clock = Clock::start();
    let r = timeout(ms(100), async {
        let inner = timeout(ms(10), sleep(secs(1))).await;
        assert!(matches!(inner, Err(TimeoutError)));
        sleep(secs(10)).await
    })
    .await;
    assert!(matches!(r, Err(TimeoutError)));
    assert_eq!(clock.elapsed(), ms(100));
}

// test_timeouts: test_nested_timeout_in_finally
#[asyncio::test(virtual_time)]
async fn a_timeout_in_cleanup_of_an_expired_timeout() {
    let log = log();
    let clock = Clock::start();
    let l = log.clone();
    let r = timeout(ms(10), async move {
        let err = sleep(secs(1)).await.unwrap_err();
        let inner = timeout(ms(10), sleep(secs(10))).await;
        push(
            &l,
            format!("cleanup timeout={}", matches!(inner, Err(TimeoutError))),
        );
        Err::<(), _>(err)
    })
    .await;
    assert!(matches!(r, Err(TimeoutError)));
    assert_eq!(take(&log), ["cleanup timeout=true"]);
    assert_eq!(clock.elapsed(), ms(20));
}

// test_timeouts: test_timeout_after_cancellation
#[asyncio::test(virtual_time)]
async fn timeout_in_cleanup_after_a_swallowed_cancel_converts() {
    current_task().unwrap().cancel();
    assert!(sleep(secs(1)).await.is_err());
    let r = timeout(secs(0), sleep(secs(1))).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert_eq!(current_task().unwrap().cancelling(), 1);
    current_task().unwrap().uncancel();
}

// test_timeouts: test_cancel_in_timeout_after_cancellation
#[asyncio::test(virtual_time)]
async fn cancel_in_a_timeout_after_a_swallowed_cancel_stays_cancelled_error() {
    current_task().unwrap().cancel();
    assert!(sleep(secs(1)).await.is_err());
    let to = timeout(secs(1), async {
        current_task().unwrap().cancel();
        sleep(secs(2)).await
    });
    let cm = to.handle();
    let r = to.await;
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
    assert!(!cm.expired());
    let me = current_task().unwrap();
    me.uncancel();
    me.uncancel();
}

/// A task that runs `timeout(d, sleep(20 s))` and records how it ended.
fn timed_sleeper(log: &Log, d: std::time::Duration) -> asyncio::Task<R<&'static str>> {
    let l = log.clone();
    create_task(async move {
        let to = timeout(d, sleep(secs(20)));
        let cm = to.handle();
        match to.await {
            Err(TimeoutError) => Ok("timeout"),
            Ok(Err(e)) => {
                push(&l, format!("cancelled expired={}", cm.expired()));
                Err(e)
            }
            Ok(Ok(())) => Ok("slept"),
        }
    })
}

// new (ASYNCIO-SEMANTICS §7): an outside cancel during a timeout stays CancelledError
#[asyncio::test(virtual_time)]
async fn outside_cancel_during_a_timeout_stays_cancelled() {
    let log = log();
    let mut t = timed_sleeper(&log, secs(10));
    sleep(secs(1)).await.unwrap();
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(take(&log), ["cancelled expired=false"]);
}

// new (ASYNCIO-SEMANTICS §7): an outside cancel in the same tick as the expiry wins (after it)
#[asyncio::test(virtual_time)]
async fn outside_cancel_at_the_expiry_tick_wins() {
    let log = log();
    let t0 = now();
    let mut t = timed_sleeper(&log, secs(1));
    checkpoint().await.unwrap(); // the timeout is armed first
    let tr = t.task_ref();
    get_running_loop().unwrap().call_at(t0 + secs(1), move || {
        tr.cancel();
    });
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(take(&log), ["cancelled expired=true"]);
    assert_eq!(now() - t0, secs(1));
}

// new (ASYNCIO-SEMANTICS §7): an outside cancel in the same tick as the expiry wins (before it)
#[asyncio::test(virtual_time)]
async fn outside_cancel_just_before_the_expiry_wins() {
    let log = log();
    let t0 = now();
    let mut t = timed_sleeper(&log, secs(1));
    let tr = t.task_ref();
    get_running_loop().unwrap().call_at(t0 + secs(1), move || {
        tr.cancel();
    });
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(take(&log), ["cancelled expired=true"]);
}

// new (DESIGN §3 deviation): a cancel swallowed without uncancel() does not stop a later expiry converting
#[asyncio::test(virtual_time)]
async fn swallowed_outside_cancel_does_not_block_conversion() {
    let clock = Clock::start();
    let mut t = create_task(async {
        timeout(secs(5), async {
            let swallowed = sleep(secs(10)).await.is_err();
            sleep(secs(10)).await?;
            Ok::<_, CancelledError>(swallowed)
        })
        .await
    });
    sleep(secs(1)).await.unwrap();
    t.cancel();
    let r = (&mut t).await.unwrap();
    assert!(matches!(r, Err(TimeoutError)), "{r:?}");
    assert_eq!(clock.elapsed(), secs(5));
    assert_eq!(t.cancelling(), 1);
}

// new (DESIGN §3): cancelling() reads 1 inside an expiring timeout and 0 after it
#[asyncio::test(virtual_time)]
async fn cancelling_inside_an_expiring_timeout_reads_one() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let r = timeout(ms(500), async move {
        let me = current_task().unwrap();
        s.borrow_mut().push(me.cancelling());
        if sleep(secs(1)).await.is_err() {
            s.borrow_mut().push(me.cancelling());
        }
    })
    .await;
    assert_eq!(r, Ok(()));
    seen.borrow_mut().push(current_task().unwrap().cancelling());
    assert_eq!(*seen.borrow(), [0, 1, 0]);
}

// new (ASYNCIO-SEMANTICS §7, verified on 3.13): a CancelledError raised anew inside an expiring timeout converts
#[asyncio::test(virtual_time)]

async fn a_fresh_cancelled_error_inside_an_expiring_timeout_converts() {
    let r = timeout(ms(10), async {
        match sleep(secs(1)).await {
            Err(_) => Err(CancelledError::with_message("mine")),
            Ok(()) => Ok(()),
        }
    })
    .await;
    assert!(matches!(r, Err(TimeoutError)), "{r:?}");
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// new (ASYNCIO-SEMANTICS §1.3): a deadline that passes with no await before the exit never fires
#[asyncio::test(virtual_time)]
async fn a_passed_deadline_without_a_later_await_does_not_fire() {
    let slot: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
    let s = slot.clone();
    let to = timeout(secs(10), async move {
        sleep(secs(1)).await?;
        let cm = s.borrow().clone().unwrap();
        cm.reschedule(now().checked_sub(secs(1))).unwrap();
        Ok::<_, CancelledError>(5)
    });
    let cm = to.handle();
    *slot.borrow_mut() = Some(cm.clone());
    assert_eq!(to.await.unwrap().unwrap(), 5);
    assert!(!cm.expired());
    sleep(secs(1)).await.unwrap();
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// test_timeouts: test_reschedule
#[asyncio::test(virtual_time)]
async fn reschedule_from_another_task() {
    let slot: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
    let deadline1 = now() + secs(10);
    let deadline2 = deadline1 + secs(20);
    let s = slot.clone();
    let mut task = create_task(async move {
        let to = timeout_at(deadline1, sleep(secs(50)));
        *s.borrow_mut() = Some(to.handle());
        to.await
    });
    checkpoint().await.unwrap();
    let cm = slot.borrow().clone().unwrap();
    assert_eq!(cm.when(), Some(deadline1));
    cm.reschedule(Some(deadline2)).unwrap();
    assert_eq!(cm.when(), Some(deadline2));
    cm.reschedule(None).unwrap();
    assert_eq!(cm.when(), None);
    task.cancel();
    let r = (&mut task).await;
    assert!(r.is_err(), "{r:?}");
    assert!(!cm.expired());
}

/// `timeout(10 s)` around a block that sleeps 1 s, moves its own deadline to
/// `new_deadline(now)`, then sleeps `rest`.
async fn rescheduled(
    new_deadline: impl FnOnce(std::time::Instant) -> Option<std::time::Instant> + 'static,
    rest: std::time::Duration,
) -> Result<R<()>, TimeoutError> {
    let slot: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
    let s = slot.clone();
    let to = timeout(secs(10), async move {
        sleep(secs(1)).await?;
        let cm = s.borrow().clone().unwrap();
        cm.reschedule(new_deadline(now())).unwrap();
        sleep(rest).await
    });
    *slot.borrow_mut() = Some(to.handle());
    to.await
}

// new (ASYNCIO-SEMANTICS §7): reschedule to an earlier deadline
#[asyncio::test(virtual_time)]
async fn reschedule_earlier() {
    let clock = Clock::start();
    let r = rescheduled(|t| Some(t + secs(2)), secs(100)).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert_eq!(clock.elapsed(), secs(3));
}

// new (ASYNCIO-SEMANTICS §7): reschedule to a later deadline
#[asyncio::test(virtual_time)]
async fn reschedule_later() {
    let clock = Clock::start();
    let r = rescheduled(|t| Some(t + secs(20)), secs(100)).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert_eq!(clock.elapsed(), secs(21));
}

// new (ASYNCIO-SEMANTICS §7): reschedule to None disarms the deadline
#[asyncio::test(virtual_time)]
async fn reschedule_to_none() {
    let clock = Clock::start();
    let r = rescheduled(|_| None, secs(30)).await;
    assert!(matches!(r, Ok(Ok(()))));
    assert_eq!(clock.elapsed(), secs(31));
}

// new (ASYNCIO-SEMANTICS §7): reschedule into the past expires on the next turn
#[asyncio::test(virtual_time)]
async fn reschedule_into_the_past() {
    let clock = Clock::start();
    let r = rescheduled(|t| t.checked_sub(secs(1)), secs(100)).await;
    assert!(matches!(r, Err(TimeoutError)));
    assert_eq!(clock.elapsed(), secs(1));
}

// test_timeouts: test_timeout_not_entered
#[asyncio::test(virtual_time)]
async fn reschedule_before_entering_is_an_error() {
    let to = timeout(ms(10), checkpoint());
    let err = to.handle().reschedule(Some(now() + ms(20))).unwrap_err();
    assert!(err.to_string().contains("has not been entered"), "{err}");
    assert!(format!("{:?}", to.handle()).contains("[created]"));
}

// test_timeouts: test_timeout_finished
#[asyncio::test(virtual_time)]
async fn reschedule_after_finishing_is_an_error() {
    let to = timeout(ms(10), async {});
    let cm = to.handle();
    to.await.unwrap();
    let err = cm.reschedule(Some(now() + ms(20))).unwrap_err();
    assert!(err.to_string().contains("finished"), "{err}");
}

// test_timeouts: test_timeout_expired
#[asyncio::test(virtual_time)]
async fn reschedule_after_expiry_is_an_error() {
    let to = timeout(ms(10), sleep(secs(1)));
    let cm = to.handle();
    assert!(to.await.is_err());
    let err = cm.reschedule(Some(now() + ms(20))).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

// test_timeouts: test_timeout_expiring
#[asyncio::test(virtual_time)]
async fn reschedule_while_expiring_is_an_error() {
    let slot: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
    let s = slot.clone();
    let to = timeout(ms(10), async move {
        assert!(sleep(secs(1)).await.is_err());
        let cm = s.borrow().clone().unwrap();
        cm.reschedule(Some(now() + ms(20))).unwrap_err().to_string()
    });
    *slot.borrow_mut() = Some(to.handle());
    let msg = to.await.unwrap();
    assert!(msg.contains("expiring"), "{msg}");
}

// test_timeouts: test_repr_active / test_repr_expired / test_repr_finished / test_repr_disabled
#[asyncio::test(virtual_time)]
async fn debug_names_the_state() {
    let slot: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
    let s = slot.clone();
    let to = timeout(secs(10), async move {
        format!("{:?}", s.borrow().as_ref().unwrap())
    });
    *slot.borrow_mut() = Some(to.handle());
    let active = to.await.unwrap();
    assert!(
        active.starts_with("<Timeout [active] when=Some("),
        "{active}"
    );
    let finished = format!("{:?}", slot.borrow().as_ref().unwrap());
    assert!(finished.starts_with("<Timeout [finished]"), "{finished}");

    let to = timeout(ms(10), sleep(secs(10)));
    let cm = to.handle();
    assert!(to.await.is_err());
    assert!(
        format!("{cm:?}").starts_with("<Timeout [expired]"),
        "{cm:?}"
    );

    let s = slot.clone();
    let to = timeout(None, async move {
        format!("{:?}", s.borrow().as_ref().unwrap())
    });
    *slot.borrow_mut() = Some(to.handle());
    assert_eq!(to.await.unwrap(), "<Timeout [active] when=None>");
}

// test_timeouts: test_timeout_without_task
#[test]
#[should_panic(expected = "inside an asyncio task")]
fn timeout_awaited_outside_a_task_panics() {
    futures::executor::block_on(timeout(ms(10), async {})).ok();
}

// new: a timeout inside a spawned task only affects that task
#[asyncio::test(virtual_time)]
async fn a_timeout_in_one_task_leaves_others_alone() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let other = create_task(async move {
        let r = sleep(secs(3)).await;
        push(&l, format!("other ok={}", r.is_ok()));
    });
    let r = timeout(secs(1), sleep(secs(5))).await;
    assert!(r.is_err());
    other.await.unwrap();
    assert_eq!(take(&log), ["other ok=true"]);
    assert_eq!(clock.elapsed(), secs(3));
}

/// A finished timeout nobody refers to is reused by the thread's next
/// `timeout`/`wait_for` (its state and scope reset); one a handle still
/// refers to is not. Alternating expiring, completing and nested
/// timeouts must each behave as new, and a kept handle keeps its state.
#[asyncio::test(virtual_time)]
async fn reused_timeouts_behave_as_new() {
    let clock = Clock::start();
    for round in 0..4u64 {
        // Expires: the inner sleep is cancelled, the scope converts.
        let r = timeout(ms(5), sleep(secs(10))).await;
        assert!(matches!(r, Err(TimeoutError)), "round {round}");
        // Completes in time.
        let r = asyncio::wait_for(sleep(ms(1)), ms(50)).await;
        assert!(matches!(r, Ok(Ok(()))), "round {round}");
        // Nested: the inner one expires first; the outer then completes.
        let r = timeout(ms(100), async {
            let inner = timeout(ms(2), sleep(secs(10))).await;
            assert!(matches!(inner, Err(TimeoutError)));
            sleep(ms(1)).await
        })
        .await;
        assert!(matches!(r, Ok(Ok(()))), "round {round}");
        // Swallowed: the inner code catches the cancellation and finishes.
        let r = timeout(ms(3), async { sleep(secs(10)).await.is_err() }).await;
        assert!(matches!(r, Ok(true)), "round {round}");
    }
    assert_eq!(clock.elapsed(), ms(4 * (5 + 1 + 2 + 1 + 3)));
    assert_eq!(current_task().unwrap().cancelling(), 0);

    // A handle keeps its timeout out of the pool: its state stays.
    let to = timeout(ms(1), sleep(secs(10)));
    let kept = to.handle();
    assert!(to.await.is_err());
    let fresh = timeout(ms(50), sleep(ms(1)));
    let fresh_handle = fresh.handle();
    assert!(matches!(fresh.await, Ok(Ok(()))));
    assert!(kept.expired());
    assert!(!fresh_handle.expired());
}

// test_timeouts: test_timeout_taskgroup (the expiry cancels a group's body
// and child; the child fails in its cleanup: the group's failure passes
// through the timeout unchanged, and nothing of the expiry is left behind)
#[asyncio::test(virtual_time)]
async fn a_group_failure_raised_during_an_expiry_passes_through() {
    #[derive(Debug)]
    enum E {
        // Held, not read: carrying the token keeps the cancellation live.
        Cancelled(#[allow(dead_code)] CancelledError),
        Failed(&'static str),
    }
    impl From<CancelledError> for E {
        fn from(e: CancelledError) -> Self {
            E::Cancelled(e)
        }
    }
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let to = timeout(
        ms(10),
        asyncio::TaskGroup::run(|tg| async move {
            let lc = l.clone();
            tg.create_task(async move {
                if sleep(secs(2)).await.is_err() {
                    push(&lc, "child cancelled");
                }
                Err::<(), _>(E::Failed("ZeroDivisionError")) // fails in its cleanup
            })
            .unwrap();
            // The body fails with ValueError, after a cleanup that awaits.
            if let Err(e) = sleep(secs(1)).await {
                push(&l, "body cleanup cancelled");
                return Err(E::from(e));
            }
            Err::<(), _>(E::Failed("ValueError"))
        }),
    );
    let cm = to.handle();
    let r = to.await;
    let failures = match r {
        Ok(Err(asyncio::TaskGroupError::Failed(f))) => f,
        other => panic!("expected the group's failure, got {other:?}"),
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(matches!(
        failures[0].error(),
        Some(E::Failed("ZeroDivisionError"))
    ));
    assert!(cm.expired());
    let mut events = take(&log);
    events.sort();
    assert_eq!(events, ["body cleanup cancelled", "child cancelled"]);
    assert_eq!(current_task().unwrap().cancelling(), 0);
    sleep(ms(50)).await.unwrap();
    assert_eq!(clock.elapsed(), ms(60));
}
