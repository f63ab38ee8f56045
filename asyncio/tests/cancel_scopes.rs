//! Cancellation of several branches inside one task (`join!`, `select!`,
//! `FuturesUnordered`), timeouts as inner scopes, foreign futures made
//! cancellable, bare checkpoints.

mod common;

use futures::channel::oneshot;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;

use asyncio::{
    cancellable, checkpoint, create_task, current_task, sleep, timeout, CancelledError,
    TimeoutError,
};
use common::*;

type R<T> = Result<T, CancelledError>;

/// A branch that sleeps `s` seconds and logs how it ended.
async fn branch(log: Log, name: &'static str, s: u64) -> R<()> {
    let r = sleep(secs(s)).await;
    push(
        &log,
        format!("{name} {}", if r.is_ok() { "slept" } else { "cancelled" }),
    );
    r
}

// new (DESIGN §3 scopes): cancel reaches every in-flight checkpoint inside join!
#[asyncio::test(virtual_time)]
async fn join_every_branch_gets_cancelled_error() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        let (a, b) = futures::join!(branch(l.clone(), "a", 10), branch(l.clone(), "b", 20));
        push(&l, "joined");
        a.and(b)
    });
    sleep(secs(1)).await.unwrap();
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(take(&log), ["a cancelled", "b cancelled", "joined"]);
    assert_eq!(clock.elapsed(), secs(1));
}

// new (DESIGN §3): one branch swallows, the other propagates: the task still ends cancelled
#[asyncio::test(virtual_time)]
async fn join_one_branch_swallows_the_other_propagates() {
    let mut t = create_task(async {
        let (a, b) = futures::join!(async { sleep(secs(10)).await.is_err() }, sleep(secs(10)));
        assert!(a);
        b
    });
    checkpoint().await.unwrap();
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
}

// new (DESIGN §3): every branch swallows: the task ends with its value
#[asyncio::test(virtual_time)]
async fn join_all_branches_swallow() {
    let clock = Clock::start();
    let mut t = create_task(async {
        let (a, b) = futures::join!(async { sleep(secs(10)).await.is_err() }, async {
            let swallowed = sleep(secs(20)).await.is_err();
            sleep(secs(1)).await.unwrap();
            swallowed
        });
        (a, b)
    });
    checkpoint().await.unwrap();
    t.cancel();
    assert_eq!((&mut t).await.unwrap(), (true, true));
    assert!(!t.cancelled());
    assert_eq!(clock.elapsed(), secs(1));
}

// new (DESIGN §3): a branch that has finished is not affected; the pending one is
#[asyncio::test(virtual_time)]
async fn join_only_in_flight_branches_are_cancelled() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        let (a, b) = futures::join!(branch(l.clone(), "a", 1), branch(l.clone(), "b", 5));
        (a.is_ok(), b.is_ok())
    });
    sleep(secs(2)).await.unwrap();
    t.cancel();
    assert_eq!((&mut t).await.unwrap(), (true, false));
    assert_eq!(take(&log), ["a slept", "b cancelled"]);
}

// new (DESIGN §3): select!'s losing checkpoint re-arms the request nobody returned
#[asyncio::test(virtual_time)]
async fn select_losing_branch_rearms_the_request() {
    let log = log();
    let l = log.clone();
    let (tx, rx) = oneshot::channel::<u32>();
    let clock = Clock::start();
    let mut t = create_task(async move {
        let mut rx = rx;
        let winner = futures::select_biased! {
            v = rx => format!("foreign {}", v.unwrap()),
            r = sleep(secs(10)).fuse() => format!("sleep err={}", r.is_err()),
        };
        push(&l, winner);
        let r = sleep(secs(1)).await;
        push(&l, format!("next await err={}", r.is_err()));
        r
    });
    sleep(secs(1)).await.unwrap();
    tx.send(7).unwrap();
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(take(&log), ["foreign 7", "next await err=true"]);
    assert_eq!(clock.elapsed(), secs(1));
}

// new (DESIGN §3): once a branch returned the error, the losing branch does not re-arm it
#[asyncio::test(virtual_time)]
async fn select_returned_request_is_not_rearmed() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        let winner = futures::select_biased! {
            r = sleep(secs(10)).fuse() => format!("a err={}", r.is_err()),
            r = sleep(secs(20)).fuse() => format!("b err={}", r.is_err()),
        };
        push(&l, winner);
        let r = sleep(secs(1)).await;
        push(&l, format!("next await err={}", r.is_err()));
        r
    });
    sleep(secs(1)).await.unwrap();
    t.cancel();
    assert!((&mut t).await.unwrap().is_ok());
    assert!(!t.cancelled());
    assert_eq!(take(&log), ["a err=true", "next await err=false"]);
    assert_eq!(clock.elapsed(), secs(2));
}

// new (DESIGN §3): FuturesUnordered polls only woken children; each is woken
#[asyncio::test(virtual_time)]
async fn futures_unordered_every_child_is_woken() {
    let log = log();
    let l = log.clone();
    let clock = Clock::start();
    let mut t = create_task(async move {
        let mut set: FuturesUnordered<_> = [("a", 1), ("b", 2), ("c", 3)]
            .into_iter()
            .map(|(n, s)| branch(l.clone(), n, s))
            .collect();
        let mut results = Vec::new();
        while let Some(r) = set.next().await {
            results.push(r.is_ok());
        }
        results
    });
    sleep(ms(1500)).await.unwrap();
    t.cancel();
    let mut results = (&mut t).await.unwrap_or_default();
    results.sort();
    let mut events = take(&log);
    events.sort();
    assert_eq!(events, ["a slept", "b cancelled", "c cancelled"]);
    assert_eq!(clock.elapsed(), ms(1500));
    // The errors were dropped by the collecting loop: handled.
    assert_eq!(results, [false, false, true]);
    assert!(!t.cancelled());
}

// new (DESIGN §3): a timeout inside join! cancels only its own branch
#[asyncio::test(virtual_time)]
async fn timeout_inside_join_cancels_only_its_branch() {
    let log = log();
    let clock = Clock::start();
    let (a, b) = futures::join!(
        timeout(secs(1), branch(log.clone(), "a", 10)),
        branch(log.clone(), "b", 3)
    );
    assert!(matches!(a, Err(TimeoutError)));
    assert!(b.is_ok());
    assert_eq!(take(&log), ["a cancelled", "b slept"]);
    assert_eq!(clock.elapsed(), secs(3));
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// new (DESIGN §3): two timeouts in two branches expire independently
#[asyncio::test(virtual_time)]
async fn two_timeouts_in_two_branches() {
    let log = log();
    let clock = Clock::start();
    let (a, b) = futures::join!(
        timeout(secs(1), branch(log.clone(), "a", 10)),
        timeout(secs(2), branch(log.clone(), "b", 10))
    );
    assert!(matches!(a, Err(TimeoutError)));
    assert!(matches!(b, Err(TimeoutError)));
    assert_eq!(take(&log), ["a cancelled", "b cancelled"]);
    assert_eq!(clock.elapsed(), secs(2));
}

// new (DESIGN §3): a task cancel during join!(timeout, sleep) reaches both and is not a timeout
#[asyncio::test(virtual_time)]
async fn task_cancel_inside_join_with_a_timeout() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        let (a, b) = futures::join!(
            timeout(secs(5), branch(l.clone(), "a", 10)),
            branch(l.clone(), "b", 10)
        );
        push(&l, format!("a timeout={}", matches!(a, Err(TimeoutError))));
        a.unwrap_or(Ok(())).and(b)
    });
    sleep(secs(1)).await.unwrap();
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(
        take(&log),
        ["a cancelled", "b cancelled", "a timeout=false"]
    );
}

// new (DESIGN §3 foreign futures): cancellable() interrupts a foreign future and drops it
#[asyncio::test(virtual_time)]
async fn cancellable_interrupts_and_drops_a_foreign_future() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        let g = l.clone();
        let r = cancellable(async move {
            let _guard = DropGuard(g, "inner dropped");
            std::future::pending::<()>().await
        })
        .await;
        push(&l, format!("err={}", r.is_err()));
        r
    });
    sleep(secs(1)).await.unwrap();
    assert!(log.borrow().is_empty());
    t.cancel();
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(take(&log), ["inner dropped", "err=true"]);
}

// new (DESIGN §3 foreign futures): cancellable() passes the foreign output through
#[asyncio::test(virtual_time)]
async fn cancellable_passes_the_output() {
    let (tx, rx) = oneshot::channel::<u32>();
    let t = create_task(async move { cancellable(rx).await });
    checkpoint().await.unwrap();
    tx.send(5).unwrap();
    assert_eq!(t.await.unwrap().unwrap().unwrap(), 5);
}

// new (DESIGN §3): a foreign future is not a checkpoint: the request waits for the next one
#[asyncio::test(virtual_time)]
async fn a_foreign_future_is_not_a_checkpoint() {
    let log = log();
    let l = log.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let mut t = create_task(async move {
        rx.await.unwrap();
        push(&l, "foreign done");
        let r = checkpoint().await;
        push(&l, format!("checkpoint err={}", r.is_err()));
        r
    });
    checkpoint().await.unwrap();
    t.cancel();
    sleep(secs(1)).await.unwrap();
    assert!(!t.done());
    tx.send(()).unwrap();
    assert!((&mut t).await.is_err());
    assert_eq!(take(&log), ["foreign done", "checkpoint err=true"]);
}

// new (DESIGN §3): a checkpoint that completes without suspending takes no pending request
#[asyncio::test(virtual_time)]
async fn completing_without_suspending_takes_no_request() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        let mut done = create_task(async { 1 });
        checkpoint().await?;
        current_task().unwrap().cancel();
        let a = cancellable(std::future::ready(5)).await;
        push(&l, format!("ready future ok={}", a.is_ok()));
        let b = (&mut done).await;
        push(&l, format!("done task ok={}", b.is_ok()));
        let c = checkpoint().await;
        push(&l, format!("checkpoint ok={}", c.is_ok()));
        c
    });
    assert!((&mut t).await.is_err());
    assert!(t.cancelled());
    assert_eq!(
        take(&log),
        [
            "ready future ok=true",
            "done task ok=true",
            "checkpoint ok=false"
        ]
    );
}

// new (DESIGN §3): checkpoint() is a bare yield that raises on a pending cancel
#[asyncio::test(virtual_time)]
async fn checkpoint_yields_and_raises() {
    let log = log();
    let l = log.clone();
    let _sib = create_task(async move { push(&l, "sibling ran") });
    checkpoint().await.unwrap();
    push(&log, "after checkpoint");
    assert_eq!(take(&log), ["sibling ran", "after checkpoint"]);
    let me = current_task().unwrap();
    me.cancel_with("now");
    let err = checkpoint().await.unwrap_err();
    assert_eq!(err.message(), Some("now"));
    drop(err);
    me.uncancel();
    checkpoint().await.unwrap();
}

// new (DESIGN §3): a request made while no checkpoint is in flight is taken by the next one
#[asyncio::test(virtual_time)]
async fn a_pending_request_is_taken_by_the_next_checkpoint_in_join() {
    let log = log();
    let l = log.clone();
    let mut t = create_task(async move {
        current_task().unwrap().cancel();
        let (a, b) = futures::join!(branch(l.clone(), "a", 1), branch(l.clone(), "b", 2));
        (a.is_err(), b.is_err())
    });
    let clock = Clock::start();
    let (a, b) = (&mut t).await.unwrap();
    assert!(a, "the first checkpoint reached takes the pending request");
    assert!(!b, "b suspended after it was delivered: it runs normally");
    assert_eq!(take(&log), ["a cancelled", "b slept"]);
    assert_eq!(clock.elapsed(), secs(2));
}

// A bare yield inside a scope registers nothing; what arrives during its
// turn is pending on a scope of its chain, or on the task, and the yield's
// next poll takes it as a checkpoint suspended there would have.

// new (DESIGN §3): an outer timeout expiring during a yield inside an inner one converts at the outer
#[asyncio::test(virtual_time)]
async fn an_outer_expiry_during_a_yield_in_an_inner_scope_converts_outside() {
    let outer = timeout(secs(0), async {
        let inner = timeout(secs(10), checkpoint());
        let cm = inner.handle();
        let r = inner.await;
        (r, cm.expired())
    });
    let cm = outer.handle();
    assert!(matches!(outer.await, Err(TimeoutError)));
    assert!(cm.expired());
    assert_eq!(current_task().unwrap().cancelling(), 0);
}

// new (DESIGN §3): the same, the inner scope's result seen before the outer converts it
#[asyncio::test(virtual_time)]
async fn the_inner_scope_passes_an_outer_expiry_through() {
    let seen = log();
    let s = seen.clone();
    let outer = timeout(secs(0), async move {
        let inner = timeout(secs(10), checkpoint());
        let cm = inner.handle();
        let r = inner.await;
        push(
            &s,
            match &r {
                Ok(Err(_)) => "inner passed the cancellation on",
                Ok(Ok(())) => "inner completed",
                Err(TimeoutError) => "inner converted",
            },
        );
        assert!(!cm.expired());
        r.unwrap()
    });
    assert!(matches!(outer.await, Err(TimeoutError)));
    assert_eq!(take(&seen), ["inner passed the cancellation on"]);
}

// new (DESIGN §3): a cancel of the task during a yield inside a timeout raises there, unconverted
#[asyncio::test(virtual_time)]
async fn a_task_cancel_during_a_scoped_yield_is_not_a_timeout() {
    let me = current_task().unwrap();
    let log = log();
    let l = log.clone();
    let _canceller = create_task(async move {
        push(&l, "cancel");
        me.cancel_with("stop");
    });
    let l = log.clone();
    let to = timeout(secs(10), async move {
        let mut yields = 0;
        loop {
            if let Err(err) = checkpoint().await {
                push(&l, format!("raised after {yields} yields"));
                return Err(err);
            }
            yields += 1;
        }
    });
    let cm = to.handle();
    let r: Result<R<()>, TimeoutError> = to.await;
    let err = r.expect("not a timeout").unwrap_err();
    assert_eq!(err.message(), Some("stop"));
    assert!(!cm.expired());
    assert_eq!(take(&log), ["cancel", "raised after 0 yields"]);
    drop(err);
    assert_eq!(current_task().unwrap().uncancel(), 0);
}

// new (DESIGN §3): an expiry and a task cancel in the same turn share one error; the timeout does not convert it
#[asyncio::test(virtual_time)]
async fn an_expiry_and_a_task_cancel_in_one_turn_stay_a_cancellation() {
    let me = current_task().unwrap();
    let to = timeout(secs(0), async move {
        me.cancel();
        checkpoint().await
    });
    let cm = to.handle();
    let r = to.await;
    assert!(
        matches!(r, Ok(Err(_))),
        "the task's own cancel rides on the error"
    );
    assert!(cm.expired());
    assert_eq!(current_task().unwrap().cancelling(), 1);
    current_task().unwrap().uncancel();
}

// new (DESIGN §3): a scoped yield's error handled inside the scope is gone; the next await runs
#[asyncio::test(virtual_time)]
async fn a_handled_expiry_at_a_scoped_yield_leaves_the_block_running() {
    let to = timeout(secs(0), async {
        let first = checkpoint().await.is_err();
        let second = checkpoint().await.is_ok();
        (first, second)
    });
    let cm = to.handle();
    assert_eq!(to.await, Ok((true, true)));
    assert!(cm.expired());
    assert_eq!(current_task().unwrap().cancelling(), 0);
}
