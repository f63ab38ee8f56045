//! Eager tasks (Python 3.12's `eager_task_factory`) and named creation.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{current_task, sleep, Task};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

// test_eager_task_factory: test_block_after_eager_step (code before the
// first await runs before the creator's next statement; the task is not
// done until it resumes)
#[asyncio::test(virtual_time)]
async fn eager_task_runs_to_its_first_suspension_inside_spawn() {
    let l = log();
    let l2 = l.clone();
    let t = Task::builder().eager_start(true).spawn(async move {
        push(&l2, "child: before await");
        sleep(Duration::ZERO).await.unwrap();
        push(&l2, "child: after await");
        1
    });
    push(&l, "parent: after spawn");
    assert!(!t.done());
    assert_eq!(t.await.unwrap(), 1);
    assert_eq!(
        *l.borrow(),
        [
            "child: before await",
            "parent: after spawn",
            "child: after await"
        ]
    );
}

// test_eager_task_factory: test_eager_completion /
// test_cancellation_after_eager_completion (a task that finishes without
// suspending is done when create_task returns, and cannot be cancelled)
#[asyncio::test(virtual_time)]
async fn eager_task_that_never_suspends_is_done_on_return() {
    let t = Task::builder().eager_start(true).spawn(async { 7 });
    assert!(t.done());
    assert!(!t.cancel());
    assert_eq!(t.await.unwrap(), 7);
}

// test_eager_task_factory: test_current_task (in part: current_task()
// inside the eager step is the child, and the parent is current again
// afterwards; the child's current_task() after an await is not checked)
#[asyncio::test(virtual_time)]
async fn current_task_is_swapped_during_the_eager_step() {
    let parent = current_task().unwrap();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let t = Task::builder()
        .name("eager-child")
        .eager_start(true)
        .spawn(async move {
            *s.borrow_mut() = current_task().map(|t| t.name());
        });
    assert_eq!(seen.borrow().as_deref(), Some("eager-child"));
    assert_eq!(current_task().unwrap(), parent);
    t.await.unwrap();
}

// new: a lazy task with a name keeps FIFO scheduling and the given name.
#[asyncio::test(virtual_time)]
async fn named_lazy_task_runs_on_a_later_turn() {
    let l = log();
    let l2 = l.clone();
    let t = Task::builder()
        .name("lazy")
        .spawn(async move { push(&l2, "child") });
    push(&l, "parent");
    assert_eq!(t.name(), "lazy");
    t.await.unwrap();
    assert_eq!(*l.borrow(), ["parent", "child"]);
}

// test_eager_task_factory: test_cancellation_after_eager_step_blocks (an
// eager task cancelled while suspended after its eager step behaves like
// any task; the awaiter's error carries the message)
#[asyncio::test(virtual_time)]
async fn eager_task_can_be_cancelled_after_its_first_step() {
    let mut t = Task::builder().eager_start(true).spawn(async {
        sleep(Duration::from_secs(10)).await?;
        Ok::<_, asyncio::CancelledError>("finished after blocking")
    });
    assert!(!t.done());
    assert!(t.cancel_with("cancellation message"));
    assert!(t.cancelling() > 0);
    let err = (&mut t).await.unwrap_err();
    assert_eq!(err.message(), Some("cancellation message"));
    assert!(t.cancelled());
}

// new: a panic in the eager step is kept for the awaiter, not thrown at the
// creator.
#[asyncio::test(virtual_time)]
async fn panic_in_the_eager_step_reaches_the_awaiter() {
    use futures::FutureExt;
    use std::future::IntoFuture;
    use std::panic::AssertUnwindSafe;
    let t = Task::builder()
        .eager_start(true)
        .spawn(async { panic!("eager boom") });
    assert!(t.done());
    let r = AssertUnwindSafe(t.into_future()).catch_unwind().await;
    let msg = r.unwrap_err();
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"eager boom"));
}

/// An eager task's first step runs inside its spawner's step, here inside
/// a timeout's body: it still starts in its own task's scope. The timeout
/// expires while the body waits on a plain (non-asyncio) future, so its
/// request stays pending on the scope; the eager child's first await must
/// not take it (only the body's next await does).
#[asyncio::test(virtual_time)]
async fn an_eager_task_started_inside_a_timeout_is_outside_it() {
    let child = Rc::new(RefCell::new(None));
    let c = child.clone();
    let r = asyncio::timeout(Duration::from_millis(5), async move {
        // Not a checkpoint: the deadline passes while nothing in the
        // scope is in flight.
        let mut waited = false;
        std::future::poll_fn(|cx| {
            if waited {
                return std::task::Poll::Ready(());
            }
            waited = true;
            let w = cx.waker().clone();
            let lp = asyncio::get_running_loop().unwrap();
            lp.call_later(Duration::from_millis(10), move || w.wake());
            std::task::Poll::Pending
        })
        .await;
        let t = Task::builder().eager_start(true).spawn(async {
            sleep(Duration::from_millis(20)).await?;
            Ok::<_, asyncio::CancelledError>("child done")
        });
        *c.borrow_mut() = Some(t);
        sleep(Duration::from_secs(1)).await
    })
    .await;
    assert!(r.is_err(), "the spawner's timeout expired");
    let t = child.borrow_mut().take().expect("spawned");
    assert!(matches!(t.await, Ok(Ok("child done"))));
}
