//! Cancellation: the error, the scopes, and the await points built on them.
//!
//! See below for the delivery rules and [`CancelledError`] for the
//! error-as-token model.
//!
//! # Cancel scopes, delivery and checkpoints
//!
//! The rules of DESIGN.md §3, in four modules: [`scope`] (the scope tree),
//! [`delivery`] (requests and their delivery), [`state`] (a task's cancel
//! state and its books) and [`mod@checkpoint`] (await points).
//!
//! ## The model
//!
//! A task runs one future, but that future may poll several branches
//! (`join!`, `select!`, `FuturesUnordered`), so a cancellation is aimed at a
//! *scope*: the task itself is the root scope, and every `timeout` /
//! `wait_for` opens an inner [`ScopeNode`](scope::ScopeNode) while it polls
//! its future. The innermost scope being polled is a property of the
//! running step, kept in a thread-local (`INNERMOST`); a scope's parent is
//! whatever was innermost when it was last polled. Two more thread-locals
//! answer the hot questions without a destructor check: whether any inner
//! scope is being polled (`SCOPED`), and how many pending and zero-timeout
//! flags are set on the thread's scopes (`FLAGS_SET`), so that a checkpoint
//! in a scope learns that its chain is quiet without walking it.
//!
//! Every await point of the crate is a *checkpoint* ([`Checkpoint`]). When it
//! suspends it registers an [`Inflight`](delivery::Inflight) entry in its
//! task: the scope it suspended in, its latest waker, and — once a
//! cancellation reaches it — a [`Delivery`](delivery::Delivery).
//!
//! A cancel request on scope `S` ([`deliver`](delivery::deliver)):
//! - goes to every in-flight checkpoint inside `S` (all of them share one new
//!   token; a checkpoint that already holds an unreturned token adds the
//!   request to that token instead), and wakes each through its own waker —
//!   or, for an await of another task, forwards the cancel to that task;
//! - if no checkpoint inside `S` is in flight, stays *pending* on `S` and is
//!   taken by the next checkpoint that suspends inside `S`, which yields once
//!   and raises on the next turn.
//!
//! A checkpoint dropped before returning its token (the losing branch of a
//! `select!`) re-arms each of its requests that no other checkpoint returned.
//!
//! A bare yield (`sleep(0)`) with nothing pending on its task or scope chain
//! registers nothing: its task is in the ready queue already, so a request
//! of its turn can stay pending and be taken when the yield is polled again
//! ([`Checkpoint::suspend_yield`]).
//!
//! ## Books kept for the liveness rules
//!
//! Each scope keeps the tokens that carry one of its requests (`tokens`); the
//! task keeps every token delivered or raised in it (`all_tokens`). A task
//! ends cancelled if one of those is still live when its future completes; a
//! timeout converts to `TimeoutError` if a token carrying its own request is
//! live and carries no request of an enclosing scope. Books are pruned of
//! tokens nobody else references.
//!
//! All of this state is touched only on the loop's thread.

pub(crate) mod checkpoint;
pub(crate) mod delivery;
pub(crate) mod error;
pub(crate) mod scope;
mod shield;
pub(crate) mod state;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use error::{CancelRecord, CancelledError};
pub use shield::{shield, Shield, ShieldFuture, ShieldTarget};

use checkpoint::Checkpoint;

/// A bare checkpoint, like Trio's: yields to the loop once (asyncio's
/// `sleep(0)`) and returns `Err(CancelledError)` if the task is cancelled.
///
/// ```
/// asyncio::run(async {
///     asyncio::checkpoint().await.unwrap();
/// });
/// ```
pub fn checkpoint() -> crate::time::Sleep {
    crate::time::sleep(std::time::Duration::ZERO)
}

/// Makes a foreign future (one not from this crate) a checkpoint: it can
/// now be interrupted by a cancellation, returning `Err(CancelledError)`
/// and dropping the inner future.
///
/// ```
/// asyncio::run(async {
///     let v = asyncio::cancellable(std::future::ready(5)).await.unwrap();
///     assert_eq!(v, 5);
/// });
/// ```
///
/// # Cancellation
/// When cancelled, the inner future is dropped at the next poll; whatever
/// it had done is kept, whatever it was waiting for is abandoned.
pub fn cancellable<F: Future>(fut: F) -> Cancellable<F> {
    Cancellable {
        inner: Some(fut),
        cp: Checkpoint::new(),
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`cancellable`].
    pub struct Cancellable<F> {
        #[pin]
        inner: Option<F>,
        cp: Checkpoint,
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, CancelledError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(err) = std::task::ready!(this.cp.poll_cancelled(cx)) {
            this.inner.set(None);
            return Poll::Ready(Err(err));
        }
        let Some(fut) = this.inner.as_mut().as_pin_mut() else {
            panic!("Cancellable polled after completion");
        };
        match fut.poll(cx) {
            Poll::Ready(v) => {
                this.cp.complete();
                this.inner.set(None);
                Poll::Ready(Ok(v))
            }
            Poll::Pending => {
                this.cp.suspend(cx, None);
                Poll::Pending
            }
        }
    }
}
